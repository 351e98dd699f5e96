// Shared building blocks of every screen: labelled fields, dialogs (including the one that shows
// a new secret once), the parts of a page around its content, badges, relative times, a loader
// hook and the split of a server error between a form's fields and its banner. Every control
// has a label; dialogs trap focus (native <dialog>) and close on Escape.

export { EnvName, RoleBadge } from "./badges";
export { ConfirmDialog, Modal, TypeToConfirmDialog } from "./dialogs";
export { Field, SelectField, Switch } from "./fields";
export { formErrors } from "./formErrors";
export { Empty, ErrorBanner, LoadError, Loading, PageHeader } from "./page";
export { SecretDialog } from "./SecretDialog";
export { ago, useNow, When } from "./time";
export { useLoad } from "./useLoad";
