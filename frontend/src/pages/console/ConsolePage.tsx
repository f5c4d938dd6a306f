import { useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../../api";
import type { ProjectSummary } from "../../api/types";
import { Link } from "../../components/Link";
import { consolePath, navigate, type ConsoleTab } from "../../router";
import { QualityPage } from "./QualityPage";
import { RoundsPage } from "./RoundsPage";

interface ConsolePageProps {
  /** null: pick the first project the user researches. */
  slug: string | null;
  tab: ConsoleTab;
  onAuthProblem: () => void;
}

/** The researcher's console for one project: its rounds and its annotation quality. */
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
          {project.name}: {tab === "rounds" ? "rounds" : "annotation quality"}
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
      {tab === "rounds" ? (
        <RoundsPage key={project.slug} slug={project.slug} onAuthProblem={onAuthProblem} />
      ) : (
        <QualityPage key={project.slug} slug={project.slug} onAuthProblem={onAuthProblem} />
      )}
    </main>
  );
}
