/**
 * Imports a module by URL on any thread: TypeScript (a --calculators_dir of
 * .ts files) through tsx's tsImport, since Node 20 cannot import .ts by
 * itself; anything else with import().
 */
export async function importModule(url: string): Promise<Record<string, unknown>> {
  if (!/\.m?ts$/.test(new URL(url).pathname)) return (await import(url)) as Record<string, unknown>;
  const { tsImport } = (await import("tsx/esm/api")) as { tsImport: (specifier: string, parent: string) => Promise<Record<string, unknown>> };
  return tsImport(url, import.meta.url);
}
