import type { ProjectSettings } from "../api/types";

export function makeSettings(overrides: Partial<ProjectSettings> = {}): ProjectSettings {
  return {
    slug: "helpfulness",
    name: "Helpfulness",
    guidelines: "Prefer the more helpful answer.",
    guidelines_version: 2,
    scale_kind: "five_point",
    custom_scale: [],
    allow_both_bad: true,
    overlap: 1,
    max_pending: 1,
    lease_seconds: 1800,
    gold_rate: 0,
    reask_rate: 0,
    rating_rubric: { "1": "Very poor", "2": "Poor", "3": "Fair", "4": "Good", "5": "Excellent" },
    rating_aspects: ["accuracy"],
    created_at: "2030-01-01T00:00:00Z",
    ...overrides,
  };
}
