/**
 * src/protocol/message.ts measures lines with `Buffer.byteLength` (UTF-8 bytes), the one Node
 * global the web companion's bundle reaches; the build injects this in its place
 * (src/web/build.ts, esbuild `inject`). Nothing else of Buffer is provided.
 */
const encoder = new TextEncoder();
export const Buffer = {
  byteLength(text: string): number {
    return encoder.encode(text).length;
  },
};
