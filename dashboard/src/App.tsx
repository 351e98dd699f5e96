// Routes. Signed-out visitors see setup (before first-run setup) or login; everything else
// lives inside the layout with its project and environment switcher.

import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { useSession } from "./session";
import { Layout } from "./Layout";
import { SetupPage } from "./pages/Setup";
import { LoginPage } from "./pages/Login";
import { AccountPage } from "./pages/Account";
import { HomeRedirect, ProjectHome } from "./pages/Home";
import { ProjectsPage } from "./pages/Projects";
import { ProjectSettingsPage } from "./pages/ProjectSettings";
import { KeysPage } from "./pages/Keys";
import { MembersPage } from "./pages/Members";
import { UsersPage } from "./pages/Users";
import { AuditPage } from "./pages/Audit";
import { EdgesPage } from "./pages/Edges";
import { FlagListPage } from "./flags/FlagList";
import { FlagEditorPage } from "./flags/FlagEditor";
import { SegmentsPage } from "./flags/Segments";
import { SegmentEditorPage } from "./flags/SegmentEditor";
import { ScheduledChangesPage } from "./flags/schedules/ScheduledChanges";
import { WebhooksPage } from "./pages/Webhooks";

export function App() {
  const { user, workspace } = useSession();
  const location = useLocation();
  if (user === undefined) {
    return (
      <p className="loading" role="status">
        Loading…
      </p>
    );
  }
  if (!user) {
    if (workspace && !workspace.is_setup_complete) {
      return (
        <Routes>
          <Route path="*" element={<SetupPage />} />
        </Routes>
      );
    }
    return (
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route
          path="*"
          element={<Navigate to="/login" replace state={{ from: location.pathname }} />}
        />
      </Routes>
    );
  }
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<HomeRedirect />} />
        <Route path="/login" element={<BackToWhereYouWere />} />
        <Route path="/setup" element={<Navigate to="/" replace />} />
        <Route path="/account" element={<AccountPage />} />
        <Route path="/projects" element={<ProjectsPage />} />
        <Route path="/projects/:projectId" element={<ProjectSettingsPage />} />
        <Route path="/projects/:projectId/envs" element={<ProjectHome />} />
        <Route path="/projects/:projectId/keys" element={<KeysPage />} />
        <Route path="/projects/:projectId/members" element={<MembersPage />} />
        <Route path="/projects/:projectId/envs/:envId/flags" element={<FlagListPage />} />
        <Route path="/projects/:projectId/envs/:envId/flags/new" element={<FlagEditorPage />} />
        <Route path="/projects/:projectId/envs/:envId/flags/:flagKey" element={<FlagEditorPage />} />
        <Route path="/projects/:projectId/envs/:envId/segments" element={<SegmentsPage />} />
        <Route path="/projects/:projectId/envs/:envId/segments/new" element={<SegmentEditorPage />} />
        <Route
          path="/projects/:projectId/envs/:envId/segments/:segmentKey"
          element={<SegmentEditorPage />}
        />
        <Route path="/projects/:projectId/envs/:envId/schedules" element={<ScheduledChangesPage />} />
        <Route path="/projects/:projectId/envs/:envId/webhooks" element={<WebhooksPage />} />
        <Route path="/users" element={<UsersPage />} />
        <Route path="/audit" element={<AuditPage />} />
        <Route path="/edges" element={<EdgesPage />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

/** After signing in: the page that sent the visitor to the login form, or home. */
function BackToWhereYouWere() {
  const from = (useLocation().state as { from?: string } | null)?.from;
  const safe = from && from.startsWith("/") && !from.startsWith("//") ? from : "/";
  return <Navigate to={safe} replace />;
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>There is nothing at this address.</p>
    </section>
  );
}
