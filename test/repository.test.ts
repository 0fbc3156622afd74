/**
 * Rules every package keeps: browser-safe sources (no node: imports outside apps/cli), an
 * ESM export map with types, a README with a tested usage example, and no runtime
 * dependencies beyond other vmmkit packages.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const packages = readdirSync(join(root, "packages")).filter((name) => statSync(join(root, "packages", name)).isDirectory());

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !/\.test(-d)?\.ts$/.test(entry.name) ? [path] : [];
  });
}

describe.each(packages)("packages/%s", (name) => {
  const directory = join(root, "packages", name);
  const manifest = JSON.parse(readFileSync(join(directory, "package.json"), "utf8"));

  it("imports no node: modules in its sources", () => {
    const offenders = sourceFiles(join(directory, "src")).filter((file) => /from\s+["']node:|require\(/.test(readFileSync(file, "utf8")));
    expect(offenders).toEqual([]);
  });

  it("exports ESM with types, the source condition first", () => {
    expect(manifest.name).toBe(`@vmmkit/${name}`);
    expect(manifest.type).toBe("module");
    const entry = manifest.exports["."];
    expect(Object.keys(entry)).toEqual(["@vmmkit/source", "types", "default"]);
    expect(entry.types).toBe("./dist/index.d.ts");
    expect(entry.default).toBe("./dist/index.js");
    expect(manifest.files).toContain("dist");
  });

  it("depends at run time only on other vmmkit packages", () => {
    for (const dependency of Object.keys(manifest.dependencies ?? {})) expect(dependency).toMatch(/^@vmmkit\//);
  });

  it("has a README with a tested usage example", () => {
    expect(existsSync(join(directory, "README.md"))).toBe(true);
    expect(existsSync(join(directory, "examples", "usage.ts"))).toBe(true);
    expect(existsSync(join(directory, "test", "readme.test.ts"))).toBe(true);
  });
});
