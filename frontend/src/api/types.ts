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
export type ProjectSettings = Schemas["ProjectSettings"];
export type ProjectSettingsChange = Schemas["PatchedProjectSettingsRequest"];
export type ScaleKind = Schemas["ScaleKindEnum"];
export type GuidelinesVersion = Schemas["GuidelinesVersion"];
export type Role = Schemas["RoleEnum"];
export type Member = Schemas["Member"];
export type MemberAddRequest = Schemas["MemberAddRequest"];
export type MemberAdded = Schemas["MemberAdded"];
export type InviteAcceptRequest = Schemas["InviteAcceptRequest"];
export type PromptImportReport = Schemas["PromptImportReport"];
export type LineError = Schemas["LineError"];
export type ExportSnapshot = Schemas["ExportSnapshot"];
export type ExportCreateRequest = Schemas["ExportCreateRequest"];
export type ExportFormat = Schemas["FormatEnum"];
export type ExportFileFormat = Schemas["FileFormatEnum"];
export type ExportAggregate = Schemas["AggregateEnum"];
export type TrainingJob = Schemas["TrainingJob"];
export type TrainingJobSummary = Schemas["TrainingJobSummary"];
export type TrainingJobStatus = Schemas["TrainingJobStatusEnum"];
export type TaskPage = Schemas["TaskPage"];

export type Session = Schemas["Session"];
export type SessionMessage = Schemas["SessionMessage"];
export type SessionSummary = Schemas["SessionSummary"];
export type LiveStreamStart = Schemas["LiveStreamStart"];
export type LiveStreamDelta = Schemas["LiveStreamDelta"];
export type LiveStreamDone = Schemas["LiveStreamDone"];
export type LiveStreamReady = Schemas["LiveStreamReady"];
export type LiveStreamStopped = Schemas["LiveStreamStopped"];
export type LiveStreamError = Schemas["LiveStreamError"];
