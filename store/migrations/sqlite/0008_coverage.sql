-- Coverage of campaign items: 'covered', or which condition is missing ('not-shipped-yet',
-- 'still-vulnerable', 'unverified', 'unreproducible', 'disagreement', 'removed'; see
-- coordinator/src/campaign Coverage). '' on items saved before: their state implies it.
ALTER TABLE campaign_items ADD COLUMN coverage TEXT NOT NULL DEFAULT '';
