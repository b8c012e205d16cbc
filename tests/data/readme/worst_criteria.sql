-- The criteria failed most often, over every stored call (README, "Ad-hoc SQL").
SELECT criterion_id, count(*) FILTER (outcome = 'fail') AS failed, count(*) FILTER (outcome <> 'na') AS applicable
FROM criterion_results JOIN call_scores USING (call_id, rubric_sha256)
GROUP BY criterion_id ORDER BY failed DESC, criterion_id LIMIT 5;
