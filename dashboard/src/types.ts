// Shapes of the REST API's answers (see /api/openapi.json), shared by every screen.

export type WorkspaceRole = "admin" | "member";
export type ProjectRole = "admin" | "editor" | "viewer";

export interface UserInfo {
  id: string;
  email: string;
  name: string;
  role: WorkspaceRole;
  workspace_name: string;
  is_setup_complete: boolean;
}

export interface Workspace {
  workspace_name: string;
  is_setup_complete: boolean;
}

export interface Project {
  id: string;
  name: string;
  slug: string;
  created_at: string;
  environment_count: number;
}

export interface Environment {
  id: string;
  project_id: string;
  name: string;
  slug: string;
  color: string;
  is_default: boolean;
  version: number;
  created_at: string;
  client_keys_read_rules: boolean;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: ProjectRole;
}
