-- Auto-routing of the demo PACS: every CT and PET series, once stable (no new instance for
-- StableAge seconds), goes to Habitus, which analyses the CT with the PET of its study
-- (PET uptake per tissue). Habitus sends its SEG and SR back to this PACS (they are SEG
-- and SR series, so they are not routed again).
-- Lua's SendToModality() takes one instance in Orthanc 1.10, so a whole series goes through
-- the REST call, as an asynchronous job that does not hold the Lua engine meanwhile.
function OnStableSeries(seriesId, tags, metadata)
  local modality = tags['Modality']
  if modality == 'CT' or modality == 'PT' then
    RestApiPost('/modalities/habitus/store',
                DumpJson({Resources = {seriesId}, Asynchronous = true}, true))
  end
end
