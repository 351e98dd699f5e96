// The dialog that shows a new secret (an SDK key, an API token, an edge token) the one time the
// server answers it.

import { useId, useRef, useState, type ReactNode } from "react";
import { Modal } from "./dialogs";

/**
 * Shows a secret that exists only in this answer of the server: a read-only field, a copy
 * button and a plain statement that it will not be shown again. The secret lives only in the
 * caller's component state and is gone once the dialog closes.
 */
export function SecretDialog({
  title,
  label,
  secret,
  children,
  onClose,
}: {
  title: string;
  /** The label of the field holding the secret, e.g. "SDK key". */
  label: string;
  secret: string;
  children?: ReactNode;
  onClose: () => void;
}) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("yes");
    } catch {
      inputRef.current?.select();
      setCopied("no");
    }
  };
  return (
    <Modal title={title} onClose={onClose} wide>
      <div className="banner banner-warn secret-warning">
        <strong>Copy it now: you will not see it again.</strong> Checkgate keeps only a hash. If
        it is lost, revoke it and create another.
      </div>
      {children}
      <div className="field secret-field">
        <label htmlFor={id}>{label}</label>
        <div className="secret-row">
          <input
            id={id}
            ref={inputRef}
            className="mono"
            readOnly
            value={secret}
            spellCheck={false}
            autoComplete="off"
            onFocus={(e) => e.currentTarget.select()}
          />
          <button type="button" className="primary" onClick={copy}>
            {copied === "yes" ? "Copied" : "Copy"}
          </button>
        </div>
        <p className="hint" role="status" aria-live="polite">
          {copied === "yes"
            ? "Copied to the clipboard."
            : copied === "no"
              ? "The clipboard is not available here: the text is selected, press Ctrl+C (⌘C) to copy it."
              : ""}
        </p>
      </div>
      <div className="actions">
        <button type="button" onClick={onClose}>
          {copied === "yes" ? "Done" : "I have stored it, close"}
        </button>
      </div>
    </Modal>
  );
}
