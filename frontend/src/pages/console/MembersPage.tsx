import { useCallback, useState, type FormEvent } from "react";
import { errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type { Member, MemberAdded, Role } from "../../api/types";
import { Field, fieldErrorsOf, formMessage, LoadError, useLoad } from "./common";

const ROLES: { role: Role; label: string; can: string }[] = [
  { role: "annotator", label: "Annotator", can: "judges tasks" },
  { role: "researcher", label: "Researcher", can: "also runs rounds, settings, imports and training" },
  { role: "admin", label: "Admin", can: "also adds members and creates exports" },
];
const roleLabel = (role: Role) => ROLES.find((r) => r.role === role)?.label ?? role;

interface MembersPageProps {
  slug: string;
  /** The viewer's role in this project: only admins add members. */
  role: Role;
  onAuthProblem: () => void;
}

export function MembersPage({ slug, role, onAuthProblem }: MembersPageProps) {
  const load = useCallback(() => consoleApi.members(slug), [slug]);
  const { data: members, setData, error, retry } = useLoad(load, onAuthProblem);

  function onAdded(added: MemberAdded) {
    const row: Member = { username: added.username, role: added.role };
    setData((list) =>
      [...(list ?? []).filter((m) => m.username !== added.username), row].sort((a, b) => a.username.localeCompare(b.username)),
    );
  }

  return (
    <div className="console-columns">
      <section aria-labelledby="members-heading">
        <h2 id="members-heading">Members</h2>
        {error && <LoadError what="the members" error={error} retry={retry} />}
        {!error && !members && <p>Loading the members…</p>}
        {members && members.length === 0 && <p>No members yet.</p>}
        {members && members.length > 0 && (
          <div className="table-scroll" tabIndex={0} role="region" aria-labelledby="members-caption">
            <table className="data-table left">
              <caption id="members-caption">People in this project and their roles</caption>
              <thead>
                <tr>
                  <th scope="col">Username</th>
                  <th scope="col">Role</th>
                </tr>
              </thead>
              <tbody>
                {members.map((m) => (
                  <tr key={m.username}>
                    <th scope="row">{m.username}</th>
                    <td>{roleLabel(m.role)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {role === "admin" ? (
        <MemberAddForm slug={slug} onAdded={onAdded} />
      ) : (
        <section className="side-panel" aria-labelledby="add-heading">
          <h2 id="add-heading">Adding members</h2>
          <p>Only the project's admins add members or change roles. Ask one of them.</p>
        </section>
      )}
    </div>
  );
}

/** Add someone (a new account gets a one-time link to set a password) or change a member's role. */
export function MemberAddForm({ slug, onAdded }: { slug: string; onAdded: (added: MemberAdded) => void }) {
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("annotator");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [added, setAdded] = useState<MemberAdded | null>(null);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setErrors({});
    setMessage(null);
    setAdded(null);
    try {
      const result = await consoleApi.addMember(slug, { username: username.trim(), role });
      setAdded(result);
      setUsername("");
      onAdded(result);
    } catch (caught) {
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(errorMessage(caught), fields, (field) => field === "username" || field === "role"));
    } finally {
      setBusy(false);
    }
  }

  const inviteUrl = added?.invite_path ? `${window.location.origin}${added.invite_path}` : null;
  return (
    <form className="console-form" onSubmit={onSubmit} noValidate aria-labelledby="add-heading">
      <h2 id="add-heading">Add a member</h2>
      <p className="hint">Someone already in the project gets the role you pick.</p>
      <Field id="member-username" label="Username" messages={errors.username}>
        {(props) => <input {...props} autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />}
      </Field>
      <Field id="member-role" label="Role" messages={errors.role}>
        {(props) => (
          <select {...props} value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.role} value={r.role}>
                {r.label}: {r.can}
              </option>
            ))}
          </select>
        )}
      </Field>
      {message && (
        <p role="alert" className="error">
          {message}
        </p>
      )}
      {added && (
        <div role="status" className="notice">
          {inviteUrl ? (
            <>
              <p>
                {added.username} was invited as {roleLabel(added.role).toLowerCase()}. Send them this one-time link to set
                a password:
              </p>
              <label htmlFor="invite-link">Invitation link</label>
              <input id="invite-link" readOnly value={inviteUrl} onFocus={(e) => e.target.select()} />
            </>
          ) : (
            <p>
              {added.username} is now {roleLabel(added.role).toLowerCase()} in this project.
            </p>
          )}
        </div>
      )}
      <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
        {busy ? "Adding…" : "Add member"}
      </button>
    </form>
  );
}
