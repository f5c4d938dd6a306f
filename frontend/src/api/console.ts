// The researcher and admin console's endpoints: project settings, guidelines, members, prompt
// import, exports and training jobs. Kept apart from `api` so the annotator's pages stay small.
import { postForm, request } from "./client";
import type {
  ExportCreateRequest,
  ExportSnapshot,
  GuidelinesVersion,
  InterfaceKind,
  InviteAcceptRequest,
  Member,
  MemberAdded,
  MemberAddRequest,
  ProjectSettings,
  ProjectSettingsChange,
  PromptImportReport,
  TaskPage,
  TrainingJob,
  TrainingJobCreateRequest,
  TrainingJobSummary,
  TrainingTrigger,
  TrainingTriggerChange,
  TrainingTriggerWriteRequest,
} from "./types";

const project = (slug: string) => `/api/v1/projects/${encodeURIComponent(slug)}`;

export const consoleApi = {
  settings: (slug: string) => request<ProjectSettings>("GET", `${project(slug)}/`),
  /** Any subset of the settings; a changed guidelines text becomes the next version. */
  updateSettings: (slug: string, change: ProjectSettingsChange) =>
    request<ProjectSettings>("PATCH", `${project(slug)}/`, change),
  /** How many of the project's tasks use an interface. */
  taskCount: async (slug: string, kind: InterfaceKind) =>
    (await request<TaskPage>("GET", `${project(slug)}/tasks/?interface=${kind}&limit=1`)).count,
  guidelines: (slug: string) => request<GuidelinesVersion[]>("GET", `${project(slug)}/guidelines/`),

  members: (slug: string) => request<Member[]>("GET", `${project(slug)}/members/`),
  addMember: (slug: string, body: MemberAddRequest) =>
    request<MemberAdded>("POST", `${project(slug)}/members/`, body),

  /** Sets the password of an invited account (from the one-time link); nobody need be signed in. */
  acceptInvite: (body: InviteAcceptRequest) => request<void>("POST", "/api/v1/auth/invite/accept/", body),

  importPrompts: (slug: string, file: File) => {
    const form = new FormData();
    form.append("file", file);
    return postForm<PromptImportReport>(`${project(slug)}/prompts/import/`, form);
  },

  exports: (slug: string) => request<ExportSnapshot[]>("GET", `${project(slug)}/exports/`),
  export: (slug: string, id: number) => request<ExportSnapshot>("GET", `${project(slug)}/exports/${id}/`),
  createExport: (slug: string, body: ExportCreateRequest) =>
    request<ExportSnapshot>("POST", `${project(slug)}/exports/`, body),
  exportDownloadPath: (slug: string, id: number) => `${project(slug)}/exports/${id}/download/`,

  /** Every job of the caller's projects (newest 100, no history): filter by project here. */
  trainingJobs: () => request<TrainingJobSummary[]>("GET", "/api/v1/training-jobs/"),
  trainingJob: (id: number) => request<TrainingJob>("GET", `/api/v1/training-jobs/${id}/`),
  cancelTrainingJob: (id: number) => request<TrainingJob>("POST", `/api/v1/training-jobs/${id}/cancel/`),
  /** Starts a job by hand; `config` holds the recipe overrides of that kind. */
  createTrainingJob: (body: TrainingJobCreateRequest) => request<TrainingJob>("POST", "/api/v1/training-jobs/", body),

  trainingTriggers: (slug: string) => request<TrainingTrigger[]>("GET", `${project(slug)}/training-triggers/`),
  createTrainingTrigger: (slug: string, body: TrainingTriggerWriteRequest) =>
    request<TrainingTrigger>("POST", `${project(slug)}/training-triggers/`, body),
  updateTrainingTrigger: (id: number, change: TrainingTriggerChange) =>
    request<TrainingTrigger>("PATCH", `/api/v1/training-triggers/${id}/`, change),
  deleteTrainingTrigger: (id: number) => request<void>("DELETE", `/api/v1/training-triggers/${id}/`),
  /** Checks the trigger now, enabled or not; `last_result` says what it started or why not. */
  runTrainingTrigger: (id: number) => request<TrainingTrigger>("POST", `/api/v1/training-triggers/${id}/run-now/`),
};
