// Rendering a screen of the flags area in a component test: at `path`, inside the session, with
// the current location in the `where` test id (to see where a save or a delete navigated).

import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router-dom";
import { SessionProvider } from "../session";

function Where() {
  const l = useLocation();
  return <p data-testid="where">{l.pathname}</p>;
}

/** Renders `routes` (pattern and element) at `path`. */
export function renderAt(path: string, routes: [string, ReactElement][]) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <SessionProvider>
        <Routes>
          {routes.map(([pattern, element]) => (
            <Route key={pattern} path={pattern} element={element} />
          ))}
        </Routes>
        <Where />
      </SessionProvider>
    </MemoryRouter>,
  );
}

/** Renders a document editor page (`FlagEditorPage` or `SegmentEditorPage`) at `path`. */
export function renderEditorAt(path: string, kind: "flags" | "segments", page: ReactElement) {
  const key = kind === "flags" ? ":flagKey" : ":segmentKey";
  return renderAt(path, [
    [`/projects/:projectId/envs/:envId/${kind}/new`, page],
    [`/projects/:projectId/envs/:envId/${kind}/${key}`, page],
  ]);
}
