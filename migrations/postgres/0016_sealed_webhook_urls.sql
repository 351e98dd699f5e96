-- A webhook's URL is sealed under the master key, like its signing secret: the path of a chat
-- service's incoming-webhook URL is its token. `url` holds `cg1.<key id>.<hex>` (see
-- control-plane/src/vault.rs); beside it, `url_shown` is what anyone who may read the webhook
-- may see (scheme and host) and `url_digest` the first 8 bytes of SHA-256 of the whole URL in
-- hex (the audit log shows a changed URL by it). A URL not in the sealed format is plain: rows
-- written before this migration (or by a control plane of an earlier build still running) hold
-- it until a control plane with a master key starts and seals them.
ALTER TABLE webhooks ADD COLUMN url_shown TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN url_digest TEXT NOT NULL DEFAULT '';
