-- The audit trail as a Merkle-tree log (sqlite). Kept in step with
-- ../postgres/0009_transparency_log.sql.

-- Signed checkpoints (c2sp.org/tlog-checkpoint, as signed notes): the tree of the first
-- `size` events has root `root` (base64). The note carries the log's signature and any
-- witness cosignatures. Copies held outside the database are what truncation and
-- rewriting are detected against (countersign audit verify --checkpoint).
CREATE TABLE log_checkpoints (
    size  INTEGER PRIMARY KEY,
    root  TEXT NOT NULL,
    at    INTEGER NOT NULL,
    note  TEXT NOT NULL
);

-- Per witness (c2sp.org/tlog-witness), the size of the last checkpoint it cosigned: the
-- old size of the next add-checkpoint request.
CREATE TABLE witness_states (
    witness  TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    at       INTEGER NOT NULL
);
