// Plugin setup shared by meshward filters: the configuration read and parsed once in onConfigure
// (a parse error is logged as critical and refuses the plugin), and metric ids defined from a name list.
import { LogLevel, MetricKind, defineMetric, log, readPluginConfiguration } from "./host";

/**
 * Reads the plugin configuration and parses it with `parser` (any class with `parse(text): C | null`
 * and `error: string | null`); null after logging `<prefix>invalid configuration: <error>`.
 */
export function configure<C, P>(parser: P, size: u32, prefix: string): C | null {
  // @ts-ignore: duck-typed (compile-time generic)
  const config: C | null = parser.parse(readPluginConfiguration(size));
  if (config === null) {
    // @ts-ignore: duck-typed (compile-time generic)
    log(LogLevel.Critical, prefix + "invalid configuration: " + changetype<string>(parser.error));
  }
  return config;
}

/** Defines `prefix + name` for each name, counters then gauges; ids in that order (0 = refused by the host). */
export function defineMetrics(prefix: string, counters: string[], gauges: string[]): StaticArray<u32> {
  const ids = new StaticArray<u32>(counters.length + gauges.length);
  for (let i = 0; i < counters.length; i++) ids[i] = defineMetric(MetricKind.Counter, prefix + counters[i]);
  for (let i = 0; i < gauges.length; i++) ids[counters.length + i] = defineMetric(MetricKind.Gauge, prefix + gauges[i]);
  return ids;
}
