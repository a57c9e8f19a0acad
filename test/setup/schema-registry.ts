/**
 * How integration tests find the Schema Registry that the global setup (./global.ts) started,
 * or the one named by SCHEMA_REGISTRY_URL (the base of a Confluent-compatible API).
 */

/** Base URL of the test registry, or undefined when none is available (the suites that need it skip). */
export function registryOrSkip(): string | undefined {
  return process.env.SCHEMA_REGISTRY_URL || undefined;
}
