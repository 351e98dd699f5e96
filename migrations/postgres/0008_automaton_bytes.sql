-- The bytes of DFA each flag's and segment's regexes compile to, summed per environment so the
-- control plane can cap what an environment's regexes hold on every edge. NULL means not
-- measured yet (a row written before this column existed): the next capped write to the
-- environment measures it. Documents without a regex condition hold none.
ALTER TABLE flags ADD COLUMN automaton_bytes BIGINT;
ALTER TABLE segments ADD COLUMN automaton_bytes BIGINT;
UPDATE flags SET automaton_bytes = 0 WHERE doc NOT LIKE '%"regex"%';
UPDATE segments SET automaton_bytes = 0 WHERE doc NOT LIKE '%"regex"%';
