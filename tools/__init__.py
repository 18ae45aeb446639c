"""Developer tooling (local simulator, promotion helpers). Never imported by the Pulumi program."""
