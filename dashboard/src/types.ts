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
  /** Marks a production environment (changes there deserve care); absent on older servers. */
  is_production?: boolean;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: ProjectRole;
}

/** A workspace user, as workspace admins see them (GET /api/users). */
export interface User {
  id: string;
  email: string;
  name: string;
  role: WorkspaceRole;
  created_at: string;
}

/** An SDK key, by prefix only; `key` is present once, in the answer that creates it. */
export interface SdkKey {
  id: string;
  name: string;
  kind: "server" | "client";
  prefix: string;
  environment_id: string;
  environment_name: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at?: string | null;
}
export interface SdkKeyCreated extends SdkKey {
  key: string;
}

/** A project API token for automation; `token` is present once, when it is created. */
export interface ApiToken {
  id: string;
  name: string;
  role: ProjectRole;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
export interface ApiTokenCreated extends ApiToken {
  token: string;
}

/** An edge relay's credential; `environments` null means every environment. */
export interface EdgeToken {
  id: string;
  name: string;
  prefix: string;
  environments: string[] | null;
  created_at: string;
  last_seen_at: string | null;
  revoked_at: string | null;
}
export interface EdgeTokenCreated extends EdgeToken {
  token: string;
}

/** One edge relay of the fleet (GET /api/edges). */
export interface EdgeStatus {
  id: string;
  name: string;
  region: string | null;
  state: "connected" | "stale" | "disconnected";
  connected_at: string | null;
  last_seen: string;
  /** The edge's address as the feed saw it. */
  address?: string;
  /** The edge token it presented. */
  token_id?: string;
  disconnected_at?: string | null;
  data_age_ms: number | null;
  environments: { environment_id: string; position: number; head: number; lag: number }[];
}

/** One audit log entry (GET /api/audit). */
export interface AuditEntry {
  id: number;
  at: string;
  actor: { kind: string; id: string | null; name: string };
  project_id: string | null;
  environment_id: string | null;
  action: string;
  target: { kind: string; key: string };
  before: unknown;
  after: unknown;
}
export interface AuditPage {
  entries: AuditEntry[];
  next_cursor: number | null;
}

/** The answer that creates a project: the project with its first environments. */
export interface ProjectCreated extends Project {
  environments: Environment[];
}

/** A fleet alert episode (GET /api/fleet/alerts). */
export interface FleetAlert {
  id: string;
  /** `edge.stale`, `edge.lagging` or `webhook.failing`. */
  kind: string;
  subject: string;
  edge_name: string | null;
  environments: string[];
  opened_at: string;
  /** Null while open. */
  resolved_at: string | null;
  detail: Record<string, unknown>;
}

/** Where SDKs are connected: an edge, or a control-plane instance's in-process serving. */
export interface ConnectionServer {
  kind: "edge" | "control_plane";
  name: string;
  region: string | null;
  session_id: string | null;
  reported_at: string;
}

/** Open SDK streams of one key in one environment at one server (GET /api/health/connections). */
export interface ConnectionEntry {
  environment_id: string;
  environment_name: string;
  project_id: string;
  key_id: string;
  key_name: string | null;
  server: ConnectionServer;
  count: number;
  clients: { ip: string; connected_at: string }[];
}
