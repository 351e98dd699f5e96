// The signed-in user, shared by every screen: loaded from /api/auth/me at start, cleared
// when the server answers 401 (the session expired or was ended elsewhere).

import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api, ApiError, SIGNED_OUT_EVENT } from "./api";
import type { Member, ProjectRole, UserInfo, Workspace } from "./types";

interface Session {
  /** Undefined while loading; null when signed out. */
  user: UserInfo | null | undefined;
  workspace: Workspace | undefined;
  /** Re-reads the user and the workspace (after setup, login, a rename). */
  refresh: () => Promise<void>;
  setUser: (user: UserInfo | null) => void;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<UserInfo | null | undefined>(undefined);
  const [workspace, setWorkspace] = useState<Workspace | undefined>(undefined);

  // Reads both before setting either, so the screens never see the new workspace with the
  // old user (a moment "signed out" would send the visitor to the login form).
  const refresh = useCallback(async () => {
    const ws = await api.get<Workspace>("/api/auth/workspace");
    let me: UserInfo | null = null;
    if (ws.is_setup_complete) {
      try {
        me = await api.get<UserInfo>("/api/auth/me");
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) throw e;
      }
    }
    setWorkspace(ws);
    setUser(me);
  }, []);

  useEffect(() => {
    refresh().catch(() => setUser(null));
    const onSignedOut = () => setUser(null);
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, [refresh]);

  const signOut = useCallback(async () => {
    try {
      await api.post("/api/auth/logout");
    } finally {
      setUser(null);
    }
  }, []);

  return (
    <SessionContext.Provider value={{ user, workspace, refresh, setUser, signOut }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}

const RANK: Record<ProjectRole, number> = { viewer: 0, editor: 1, admin: 2 };

/**
 * The signed-in user's role in a project: workspace admins are project admins everywhere;
 * others are what the project's member list says (undefined while loading, null when not a
 * member). The UI hides what the role cannot do; the server refuses it anyway.
 */
export function useProjectRole(projectId: string | undefined): ProjectRole | null | undefined {
  const { user } = useSession();
  const [role, setRole] = useState<ProjectRole | null | undefined>(undefined);
  useEffect(() => {
    if (!user || !projectId) return;
    if (user.role === "admin") {
      setRole("admin");
      return;
    }
    let live = true;
    api
      .get<Member[]>(`/api/projects/${encodeURIComponent(projectId)}/members`)
      .then((ms) => live && setRole(ms.find((m) => m.user_id === user.id)?.role ?? null))
      .catch(() => live && setRole(null));
    return () => {
      live = false;
    };
  }, [user, projectId]);
  return role;
}

/** Whether `role` is at least `needed`. */
export function can(role: ProjectRole | null | undefined, needed: ProjectRole): boolean {
  return !!role && RANK[role] >= RANK[needed];
}
