/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the dashboard with hot reload and sends /api to a control plane on
// CHECKGATE_URL (default http://127.0.0.1:3000, started with COOKIE_SECURE=false).
const target = process.env.CHECKGATE_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/api": { target, changeOrigin: false } } },
  build: { outDir: "dist", sourcemap: false, assetsDir: "assets" },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
    setupFiles: ["src/test-setup.ts"],
  },
});
