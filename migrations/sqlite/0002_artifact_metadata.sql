-- Metadata an artifact carries (for a volume read from DICOM: patient/study/series/SOP UIDs, modality, body
-- part, acquisition parameters, geometry), as JSON text, so the run record answers "which series was this?".
ALTER TABLE artifacts ADD COLUMN metadata_json TEXT;
