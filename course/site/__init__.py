"""The course where learners read it: launch links (Binder, JupyterHub via nbgitpuller) and the rendered site."""
