/**
 * The dashboard page: plain HTML, CSS and JS (no framework, no build step), a few kB so that a
 * phone on the site's Wi-Fi gets it at once from a Pi Zero. Live by server-sent events: the
 * server sends the whole snapshot on each change; the page renders it with textContent only
 * (nothing from the pile is ever parsed as HTML), its figures rounded (energy and voltage to
 * 0.1, power to 1 W, current to 0.1 A).
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>piled</title><link rel="stylesheet" href="/app.css"></head><body>
<header><h1>piled <span id="pile"></span></h1><span id="live" class="off">offline</span></header>
<main>
<section><h2>State</h2><p class="big" id="state">-</p><dl id="status"></dl></section>
<section><h2>Session</h2><dl id="session"><dd>no session</dd></dl></section>
<section><h2>Meter</h2><dl id="meter"></dl></section>
<section><h2>Faults</h2><ul id="faults"><li>none</li></ul></section>
<section><h2>Last sessions</h2><table><thead><tr><th>start</th><th>carrier</th><th>Wh</th><th>end</th></tr></thead><tbody id="sessions"></tbody></table></section>
<section><h2>Links</h2><dl id="links"></dl></section>
<section id="tech"><h2>Technician</h2>
<form id="login"><input type="password" id="secret" autocomplete="current-password" placeholder="technician secret" maxlength="256"><button>Log in</button></form>
<div id="actions" hidden><button data-c="stop">Stop session</button><button data-c="clear-fault">Clear faults</button>
<button data-c="relay-test">Relay test</button><button data-c="available">Available</button><button data-c="unavailable">Unavailable</button>
<button id="logout">Log out</button></div><p id="msg" role="status"></p></section>
</main><script src="/app.js" defer></script></body></html>
`;

export const PAGE_CSS = `body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{display:flex;justify-content:space-between;align-items:center;background:#1d3557;color:#fff;padding:.4em 1em}
h1{font-size:1.2em;margin:0}h2{font-size:1em;margin:0 0 .4em}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(17em,1fr));gap:.8em;padding:.8em}
section{background:#fff;border-radius:6px;padding:.7em 1em;box-shadow:0 1px 2px #0002}
.big{font-size:1.8em;font-weight:600;margin:.1em 0}dl{display:grid;grid-template-columns:auto 1fr;gap:0 .8em;margin:0}
dt{color:#666}dd{margin:0}table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:0 .3em}
.FAULTED{color:#c1121f}.CHARGING{color:#2a9d8f}#faults li{margin-bottom:.4em}#faults b{color:#c1121f}
#live.on{color:#8f8}#live.off{color:#f88}button{margin:.2em .2em 0 0}#msg{min-height:1.2em}
`;

export const PAGE_JS = `"use strict";
const $=(i)=>document.getElementById(i);let csrf=null;
const t=(ms)=>ms?new Date(ms).toLocaleTimeString():"-";
const n=(x,d)=>typeof x==="number"?String(Math.round(x*10**d)/10**d):"-";
const dur=(ms)=>{const s=Math.floor(ms/1000);return Math.floor(s/3600)+"h"+String(Math.floor(s/60)%60).padStart(2,"0")+"m"+String(s%60).padStart(2,"0")+"s"};
function dl(id,rows){const e=$(id);e.replaceChildren();for(const[k,v]of rows){const a=document.createElement("dt");a.textContent=k;const b=document.createElement("dd");b.textContent=String(v);e.append(a,b)}}
function render(s){const st=s.status;$("pile").textContent=st.pileId;const e=$("state");e.textContent=st.state;e.className="big "+st.state;
dl("status",[["since",t(st.since)],["contactor",st.contactor],["lock",st.lock],["vehicle",st.vehiclePresent===null?"n/a":st.vehiclePresent?"present":"absent"],["pilot",s.pilot??"n/a"],["BLE radio",st.ble],["security",st.security.alarm?"ALARM":"ok"]]);
const act=s.sessions.find((x)=>x.status==="active");const m=s.meter&&s.meter.ok?s.meter:null;
if(st.session){const l=s.limits||{};dl("session",[["energy",n(st.session.energyWh??0,1)+" Wh"],["power",m?n(m.powerW,0)+" W":"-"],["elapsed",dur(s.serverTime-st.session.startedAt)],["carrier",act?act.carrier+" "+act.deviceId:"-"],["limits",[l.maxCurrentA?l.maxCurrentA+" A":"",l.maxEnergyWh?l.maxEnergyWh+" Wh":"",l.maxDurationMs?dur(l.maxDurationMs):""].filter(Boolean).join(", ")||"none"]])}
else dl("session",[["","no session"]]);
dl("meter",m?[["energy",n(m.energyImportWh,1)+" Wh"],["power",n(m.powerW,0)+" W"],["voltage",n(m.voltageV,1)+" V"],["current",n(m.currentA,1)+" A"]]:[["",s.meter?s.meter.message:"no reading"]]);
const f=$("faults");f.replaceChildren();if(!s.faults.length){const li=document.createElement("li");li.textContent="none";f.append(li)}
for(const x of s.faults){const li=document.createElement("li");const b=document.createElement("b");b.textContent=x.code+(x.latched?" (latched)":"");li.append(b," since "+t(x.since)+": "+x.advice);f.append(li)}
const tb=$("sessions");tb.replaceChildren();for(const x of s.sessions.slice(0,8)){const tr=document.createElement("tr");for(const v of[t(x.startedAt),x.carrier,n(x.energyWh,1),x.status==="active"?"active":x.reason??x.status]){const td=document.createElement("td");td.textContent=String(v);tr.append(td)}tb.append(tr)}
dl("links",Object.entries({...s.links,...st.counters}).sort());}
function live(){const es=new EventSource("/events");es.addEventListener("snapshot",(ev)=>{$("live").textContent="live";$("live").className="on";render(JSON.parse(ev.data))});
es.onerror=()=>{$("live").textContent="offline";$("live").className="off"}}
async function post(path,body){const h={"content-type":"application/json"};if(csrf)h["x-csrf-token"]=csrf;const r=await fetch(path,{method:"POST",headers:h,body:JSON.stringify(body),credentials:"same-origin"});return r.json().catch(()=>({ok:false,message:"HTTP "+r.status}))}
function tech(on){$("login").hidden=on;$("actions").hidden=!on}
$("login").addEventListener("submit",async(ev)=>{ev.preventDefault();const r=await post("/api/login",{secret:$("secret").value});$("secret").value="";if(r.ok){csrf=r.csrf;tech(true);$("msg").textContent="logged in"}else $("msg").textContent=r.message});
$("logout").addEventListener("click",async()=>{await post("/api/logout",{});csrf=null;tech(false);$("msg").textContent="logged out"});
for(const b of document.querySelectorAll("#actions [data-c]"))b.addEventListener("click",async()=>{const c=b.dataset.c;
const body=c==="available"||c==="unavailable"?{command:"availability",available:c==="available"}:c==="clear-fault"?{command:c,code:"all"}:{command:c};
const r=await post("/api/command",body);$("msg").textContent=(r.ok?"done: "+r.detail:"refused: "+r.message);if(r.code==="LOGIN")tech(false)});
live();
`;
