import { defineConfig } from 'vite';

// Served by openvod under /console/; hashed files under /console/assets/ are cached for good.
export default defineConfig({
  base: '/console/',
  // hls.js alone is ~500 kB minified: one bundle is fine for a console.
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
});
