"""The verl 0.9.1 GRPO recipe of the reference agent (see reference_agent/README.md).

Runs in the training environment (.venv-train or the GPU nodes' own), never in the main one: every
module here but `settings`, `batching` and `shared_reader` imports verl. Nothing is imported on package
import.
"""
