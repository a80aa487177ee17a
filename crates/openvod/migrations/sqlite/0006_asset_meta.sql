-- Asset meta (`AssetSettings.meta`: title, creator_id, external_id) lives in the `settings` JSON.
-- The list filters compare exactly these expressions (see `db::sqlite::META_EXTERNAL_ID`), so the
-- expression indexes below serve them. Rows written before meta existed have no `$.meta`: NULL.
CREATE INDEX assets_meta_external_id ON assets (json_extract(settings, '$.meta.external_id'));
CREATE INDEX assets_meta_creator_id ON assets (json_extract(settings, '$.meta.creator_id'));
