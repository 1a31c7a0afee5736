-- Auto-routing of the demo PACS: every CT series, once stable (no new instance for
-- StableAge seconds), goes to Habitus. Habitus sends its SEG and SR back to this PACS
-- (they are SEG and SR series, so they are not routed again).
-- Lua's SendToModality() takes one instance in Orthanc 1.10, so a whole series goes through
-- the REST call, as an asynchronous job that does not hold the Lua engine meanwhile.
function OnStableSeries(seriesId, tags, metadata)
  if tags['Modality'] == 'CT' then
    RestApiPost('/modalities/habitus/store',
                DumpJson({Resources = {seriesId}, Asynchronous = true}, true))
  end
end
