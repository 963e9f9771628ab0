"""The leaderboard: submissions of final memories, validation, re-scoring by us, the results store and
the published tables (markdown and a static site). A submission is data and is never executed."""
