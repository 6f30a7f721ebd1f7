"""Chapter 7 (schema design): the UUID v7 helper and the small demo schemas the lesson builds."""
