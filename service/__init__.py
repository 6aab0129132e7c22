"""The shared layer every domain builds on: config, database, tenancy and auth, crypto, audit, jobs, stores, the
bare app (`service.app`) and what a domain hands the composition root (`service.wiring`). It imports no domain."""
