/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The bundle is committed (web/dist) and embedded in crm-server, so a fresh machine
// needs no Node; scripts/test rebuilds it and fails when it differs.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // No inline scripts or styles: the server's CSP allows only 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    // The dashboard chunk (ECharts) is ~520 kB before gzip, loaded with that page only.
    chunkSizeWarningLimit: 600,
    rollupOptions: {
      output: {
        // ECharts in a chunk named for it, loaded with the dashboard or the report
        // builder (not named after whatever module of ours the two pages share).
        manualChunks: (id) => (/node_modules\/(echarts|zrender|tslib)\//.test(id) ? "echarts" : undefined),
      },
    },
  },
  server: {
    // `npm run dev` against a local crm-server.
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
