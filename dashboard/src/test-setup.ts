// Shared by every component test. The test command runs them on shared two-core machines
// beside builds: give asynchronous queries (findBy…, waitFor) five seconds, not the library's
// one, so a slow moment is not a failure.
import { configure } from "@testing-library/react";

configure({ asyncUtilTimeout: 5000 });
