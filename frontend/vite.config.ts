import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const django = "http://127.0.0.1:8000";

export default defineConfig(({ command }) => ({
  plugins: [react()],
  // Django serves the built assets under STATIC_URL; the dev server stays at "/" so
  // client-side paths (/login) are the same in dev and production.
  base: command === "build" ? "/static/" : "/",
  build: { outDir: "dist", emptyOutDir: true },
  server: {
    // Host is passed through unchanged so Django's CSRF origin check sees the dev origin.
    proxy: { "/api": django, "/admin": django, "/static/admin": django },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
    unstubGlobals: true,
  },
}));
