/**
 * Builds the web companion into one folder of static files (default dist/page): index.html,
 * style.css and app.js, the page (src/web/main.ts) with the companion core, src/client/web and
 * src/crypto bundled by esbuild for the browser. Two files are swapped for their browser twins,
 * as the layers rule (docs/DESIGN.md) describes: src/crypto/primitives.ts (Web Crypto, @noble)
 * and src/client/core/storage.ts (IndexedDB). The bundle must hold no Node built-in: the build
 * fails if one is reached.
 *
 * `npm run build` runs it (node dist/web/build.js); tests import buildWebPage().
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, from src/web/build.ts (tsx) or dist/web/build.js (built). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = path.join(ROOT, 'src');

/** `./primitives.js` in src/crypto and `./storage.js` in src/client/core → their `.browser.ts` twins. */
const browserTwins: Plugin = {
  name: 'browser-twins',
  setup(b) {
    const twins = new Map([
      [path.join(SRC, 'crypto', 'primitives.js'), path.join(SRC, 'crypto', 'primitives.browser.ts')],
      [path.join(SRC, 'client', 'core', 'storage.js'), path.join(SRC, 'client', 'core', 'storage.browser.ts')],
    ]);
    b.onResolve({ filter: /^\.{1,2}\/.*(primitives|storage)\.js$/ }, (args) => {
      const twin = twins.get(path.resolve(args.resolveDir, args.path));
      return twin === undefined ? undefined : { path: twin };
    });
    // A Node built-in reached from the page is a bug: fail the build, naming who imported it.
    b.onResolve({ filter: /^node:|^(fs|os|path|net|tls|crypto|events|buffer|stream|child_process)$/ }, (args) => ({
      errors: [{ text: `the browser bundle must not import ${args.path} (imported by ${path.relative(ROOT, args.importer)})` }],
    }));
  },
};

export interface WebBuild {
  outDir: string;
  /** Bytes of app.js. */
  bytes: number;
  /** Every source file in the bundle (for the tests' checks). */
  inputs: string[];
}

/** The esbuild options every browser bundle of sealchat shares: the twins, no Node built-in. */
function browserOptions(minify: boolean): BuildOptions & { metafile: true } {
  return {
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify,
    sourcemap: false,
    metafile: true,
    legalComments: 'linked',
    logLevel: 'silent',
    plugins: [browserTwins],
  };
}

/** Build the page into `outDir` (default dist/page). */
export async function buildWebPage(outDir = path.join(ROOT, 'dist', 'page'), o: { minify?: boolean } = {}): Promise<WebBuild> {
  await mkdir(outDir, { recursive: true });
  const out = await build({
    ...browserOptions(o.minify ?? true),
    entryPoints: [path.join(SRC, 'web', 'main.ts')],
    outfile: path.join(outDir, 'app.js'),
  });
  for (const f of ['index.html', 'style.css']) await copyFile(path.join(SRC, 'web', f), path.join(outDir, f));
  const meta: Metafile = out.metafile;
  const js = Object.entries(meta.outputs).find(([k]) => k.endsWith('app.js'))!;
  return { outDir, bytes: js[1].bytes, inputs: Object.keys(meta.inputs) };
}

/**
 * Bundle another entry (an ES module) for the browser exactly as the page is bundled: the same
 * twins and options. The web bench uses it to run src/crypto's functions in Chromium as the
 * page compiles them, without a bench-only path in the page itself.
 */
export async function buildBrowserModule(entry: string, outfile: string, o: { minify?: boolean } = {}): Promise<void> {
  await build({ ...browserOptions(o.minify ?? true), entryPoints: [entry], outfile });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildWebPage(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`web companion: ${path.relative(process.cwd(), r.outDir)}/app.js, ${(r.bytes / 1024).toFixed(0)} KiB`);
}
