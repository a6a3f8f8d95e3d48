import { openStore } from "/work/wt/boot/dist/src/store/index.js";
import Database from "better-sqlite3";
const p = process.argv[2];
openStore(p).close();
const db = new Database(p);
db.exec("BEGIN IMMEDIATE");
console.log("locked");
setInterval(() => {}, 1000);
