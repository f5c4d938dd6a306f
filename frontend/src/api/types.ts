// The only place API types are named; they all come from the generated schema.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Me = Schemas["Me"];
export type LoginRequest = Schemas["LoginRequest"];
export type Assignment = Schemas["Assignment"];
export type NextAssignment = Schemas["NextAssignment"];
export type PromptMessage = Schemas["PromptMessage"];
export type Candidate = Schemas["Candidate"];
export type ScalePoint = Schemas["ScalePoint"];
export type JudgmentRequest = Schemas["JudgmentCreateRequest"];
export type Judgment = Schemas["Judgment"];
export type SubmitAndNext = Schemas["SubmitAndNext"];
