import { useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../../api";
import type { ProjectSummary, Role } from "../../api/types";
import { Link } from "../../components/Link";
import { consolePath, navigate, PROJECT_TABS, type ConsoleTab } from "../../router";
import { ExportsPage } from "./ExportsPage";
import { GuidelinesPage } from "./GuidelinesPage";
import { MembersPage } from "./MembersPage";
import { PromptsPage } from "./PromptsPage";
import { QualityPage } from "./QualityPage";
import { RoundsPage } from "./RoundsPage";
import { SettingsPage } from "./SettingsPage";
import { TrainingPage } from "./TrainingPage";

const TITLES: Record<ConsoleTab, string> = {
  rounds: "rounds",
  training: "training",
  quality: "annotation quality",
  exports: "exports",
  settings: "settings",
  guidelines: "guidelines",
  members: "members",
  prompts: "prompt import",
};
const PROJECT_TAB_NAMES: Record<string, string> = {
  settings: "Settings",
  guidelines: "Guidelines",
  members: "Members",
  prompts: "Prompt import",
};

interface ConsolePageProps {
  /** null: pick the first project the user researches. */
  slug: string | null;
  tab: ConsoleTab;
  onAuthProblem: () => void;
}

/** The researcher's console for one project: rounds, training, quality, exports and the project itself. */
export default function ConsolePage({ slug, tab, onAuthProblem }: ConsolePageProps) {
  const [projects, setProjects] = useState<ProjectSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    api.projects().then(
      (all) => current && setProjects(all.filter((p) => p.role === "researcher" || p.role === "admin")),
      (caught: unknown) => {
        if (!current) return;
        setError(errorMessage(caught));
        if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
      },
    );
    return () => {
      current = false;
    };
  }, [onAuthProblem]);

  const first = projects?.[0];
  useEffect(() => {
    if (slug === null && first) navigate(consolePath(first.slug, tab), { replace: true });
  }, [slug, first, tab]);

  if (error) {
    return (
      <main className="page status">
        <p role="alert" className="error">
          Could not load your projects: {error}
        </p>
      </main>
    );
  }
  if (projects === null || (slug === null && first)) {
    return (
      <main className="page status">
        <p>Loading…</p>
      </main>
    );
  }
  const project = projects.find((p) => p.slug === slug);
  if (!project) {
    return (
      <main className="page status">
        <h1>No project to show</h1>
        <p>
          {projects.length === 0
            ? "You are not a researcher in any project yet. Ask an admin to add you."
            : `You are not a researcher in a project called “${slug}”.`}
        </p>
        {first && <Link to={consolePath(first.slug, tab)}>Go to {first.name}</Link>}
      </main>
    );
  }

  return (
    <main className="page console">
      <div className="console-head">
        <h1>
          {project.name}: {TITLES[tab]}
        </h1>
        {projects.length > 1 && (
          <div className="project-picker">
            <label htmlFor="project-picker">Project</label>
            <select id="project-picker" value={project.slug} onChange={(e) => navigate(consolePath(e.target.value, tab))}>
              {projects.map((p) => (
                <option key={p.slug} value={p.slug}>
                  {p.name}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {PROJECT_TABS.includes(tab) && (
        <nav className="sub-nav" aria-label="Project sections">
          {PROJECT_TABS.map((section) => (
            <Link key={section} to={consolePath(project.slug, section)} current={section === tab}>
              {PROJECT_TAB_NAMES[section]}
            </Link>
          ))}
        </nav>
      )}
      <TabContent key={`${project.slug}/${tab}`} tab={tab} slug={project.slug} role={project.role} onAuthProblem={onAuthProblem} />
    </main>
  );
}

interface TabContentProps {
  tab: ConsoleTab;
  slug: string;
  role: Role;
  onAuthProblem: () => void;
}

function TabContent({ tab, slug, role, onAuthProblem }: TabContentProps) {
  switch (tab) {
    case "rounds":
      return <RoundsPage slug={slug} onAuthProblem={onAuthProblem} />;
    case "training":
      return <TrainingPage slug={slug} onAuthProblem={onAuthProblem} />;
    case "quality":
      return <QualityPage slug={slug} onAuthProblem={onAuthProblem} />;
    case "exports":
      return <ExportsPage slug={slug} role={role} onAuthProblem={onAuthProblem} />;
    case "settings":
      return <SettingsPage slug={slug} onAuthProblem={onAuthProblem} />;
    case "guidelines":
      return <GuidelinesPage slug={slug} onAuthProblem={onAuthProblem} />;
    case "members":
      return <MembersPage slug={slug} role={role} onAuthProblem={onAuthProblem} />;
    case "prompts":
      return <PromptsPage slug={slug} />;
  }
}
