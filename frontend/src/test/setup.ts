import { cleanup } from "@testing-library/react";
import { afterEach, beforeEach } from "vitest";

beforeEach(() => {
  document.cookie = "csrftoken=test-csrf-token";
});

afterEach(() => {
  cleanup();
  window.history.replaceState(null, "", "/");
});
