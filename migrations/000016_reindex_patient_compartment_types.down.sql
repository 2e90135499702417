-- Nothing to undo: the extra index rows of RelatedPerson, Specimen and Coverage are only
-- read by the parameters the up migration's code added, and an older store ignores them.
SELECT 1;
