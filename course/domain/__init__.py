"""What learners import as "the application": the models, the input schemas and password hashing."""
