-- Subtitle tracks of an asset (Mux text tracks): a JSON list of TextTrack.
ALTER TABLE assets ADD COLUMN text_tracks TEXT;
