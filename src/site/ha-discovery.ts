/**
 * Home Assistant MQTT discovery documents: the pile appears as one device with its state,
 * power, energy and fault sensors, and (only when MQTT commands are enabled) a stop button and
 * an availability switch. https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
 */
export interface DiscoveryInput {
  prefix: string;
  /** Topic-safe pile id. */
  id: string;
  pileId: string;
  base: string;
  version: string;
  commandTopic: string | undefined;
}

export function discoveryDocuments(d: DiscoveryInput): { topic: string; payload: Record<string, unknown> }[] {
  const device = {
    identifiers: [`piled_${d.id}`],
    name: `Charging pile ${d.pileId}`,
    manufacturer: "piled",
    sw_version: d.version,
  };
  const availability = {
    availability_topic: `${d.base}/availability`,
    payload_available: "online",
    payload_not_available: "offline",
  };
  const common = (key: string, name: string) => ({
    name,
    unique_id: `piled_${d.id}_${key}`,
    object_id: `piled_${d.id}_${key}`,
    device,
    ...availability,
  });
  const at = (component: string, key: string) => `${d.prefix}/${component}/piled_${d.id}/${key}/config`;
  const docs: { topic: string; payload: Record<string, unknown> }[] = [
    {
      topic: at("sensor", "state"),
      payload: {
        ...common("state", "State"),
        state_topic: `${d.base}/state`,
        value_template: "{{ value_json.state }}",
      },
    },
    {
      topic: at("sensor", "power"),
      payload: {
        ...common("power", "Power"),
        state_topic: `${d.base}/meter`,
        value_template: "{{ value_json.powerW }}",
        unit_of_measurement: "W",
        device_class: "power",
        state_class: "measurement",
      },
    },
    {
      topic: at("sensor", "energy"),
      payload: {
        ...common("energy", "Energy"),
        state_topic: `${d.base}/meter`,
        value_template: "{{ value_json.energyImportWh }}",
        unit_of_measurement: "Wh",
        device_class: "energy",
        state_class: "total_increasing",
      },
    },
    {
      topic: at("binary_sensor", "fault"),
      payload: {
        ...common("fault", "Fault"),
        state_topic: `${d.base}/faults`,
        value_template: "{{ 'ON' if value_json | length > 0 else 'OFF' }}",
        device_class: "problem",
      },
    },
  ];
  if (d.commandTopic !== undefined) docs.push(...commandDocuments(d.commandTopic, common, at, d.base));
  return docs;
}

type Common = (key: string, name: string) => Record<string, unknown>;

/** The stop button and the availability switch, only when MQTT commands are enabled. */
function commandDocuments(
  commandTopic: string,
  common: Common,
  at: (component: string, key: string) => string,
  base: string,
): { topic: string; payload: Record<string, unknown> }[] {
  const out: { topic: string; payload: Record<string, unknown> }[] = [];
  out.push({
    topic: at("button", "stop"),
    payload: {
      ...common("stop", "Stop session"),
      command_topic: commandTopic,
      payload_press: '{"command":"stop"}',
    },
  });
  out.push({
    topic: at("switch", "available"),
    payload: {
      ...common("available", "Available"),
      command_topic: commandTopic,
      state_topic: `${base}/state`,
      value_template: "{{ 'ON' if value_json.state != 'UNAVAILABLE' else 'OFF' }}",
      state_on: "ON",
      state_off: "OFF",
      payload_on: '{"command":"availability","available":true}',
      payload_off: '{"command":"availability","available":false}',
    },
  });
  return out;
}
