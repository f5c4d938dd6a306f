// The only place API types are named; they all come from the generated schema.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Me = Schemas["Me"];
export type LoginRequest = Schemas["LoginRequest"];
export type Assignment = Schemas["Assignment"];
export type NextAssignment = Schemas["NextAssignment"];
export type PromptMessage = Schemas["PromptMessage"];
export type Candidate = Schemas["Candidate"];
export type CandidateLabel = Schemas["CandidateLabelEnum"];
export type ScalePoint = Schemas["ScalePoint"];
export type InterfaceKind = Schemas["InterfaceEnum"];
export type Flag = Schemas["FlagsEnum"];
export type Thumbs = Schemas["ThumbsEnum"];
export type JudgmentRequest = Schemas["JudgmentCreateRequest"];
export type Judgment = Schemas["Judgment"];
export type SubmitAndNext = Schemas["SubmitAndNext"];
export type SkipRequest = Schemas["SkipRequest"];

export type ProjectSummary = Schemas["ProjectSummary"];
export type ModelVersion = Schemas["ModelVersion"];
export type Round = Schemas["Round"];
export type RoundStatus = Schemas["RoundStatusEnum"];
export type RoundCreateRequest = Schemas["RoundCreateRequest"];
export type QualityReport = Schemas["QualityReport"];
export type AnnotatorQuality = Schemas["AnnotatorQuality"];
export type ProjectQuality = Schemas["ProjectQuality"];
