import { cleanup } from "@testing-library/react";
import { afterEach, beforeEach } from "vitest";

beforeEach(() => {
  document.cookie = "csrftoken=test-csrf-token";
  localStorage.clear(); // drafts are keyed by assignment id, which tests reuse
});

afterEach(() => {
  cleanup();
  window.history.replaceState(null, "", "/");
});
