# Duplicates and merging
dup-link = Duplicates
dup-title = Likely duplicates
dup-by = Same { $field }
dup-kind-email = same e-mail
dup-kind-phone = same phone
dup-kind-name = same name
dup-warning-title = This may already exist
dup-same = ({ $reasons })
dup-open = Open the existing record
dup-hidden = A matching record exists, owned by another team ({ $reasons }).
dup-hidden-count = { $count ->
    [one] and 1 more matching record owned by another team
   *[other] and { $count } more matching records owned by another team
}
dup-merge = Merge
dup-next = More groups
dup-none-title = No likely duplicates
dup-none-body = Nothing matches by this rule.
dup-no-rules = Duplicates are found by e-mail and phone fields; this object has none.
merge-title = Merge records
merge-help = Pick the record that stays and, for each field that differs, the value it keeps. The others go to the recycle bin; their related records, activities and history move to the one that stays.
merge-field = Field
merge-keep = Keep this record
merge-union = Combined from all records
merge-confirm = Merge
merge-note = Related records move to the record that stays.
flash-merged = Records merged.
err-merge-invalid_selection = Choose two to five different records to merge.
err-merge-version_required = The version of every record is required.
err-merge-invalid_source = A chosen value must come from one of the merged records.
err-duplicates-unknown_rule = There is no such duplicate rule for this object.
err-record-merged = The record was merged into another record.
