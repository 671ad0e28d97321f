"""Template bundles: a folder with ``template.yml`` (metadata, parameters), ``workflow.yml``
(the workflow with ``${parameter}`` placeholders) and ``README.md``."""
