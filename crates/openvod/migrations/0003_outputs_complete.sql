-- Set when the pipeline has published everything it will produce (all rungs and static files);
-- a `ready` asset may still be gaining lower rungs and static files before that.
ALTER TABLE assets ADD COLUMN outputs_complete {bool} NOT NULL DEFAULT {false};
