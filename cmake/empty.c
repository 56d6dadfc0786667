/* Placeholder translation unit for a layer that has no sources yet. */
typedef int s3g_empty_translation_unit;
