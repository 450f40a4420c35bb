// Review state of one image: the candidate queue (lowest energy first — the model's least confident
// objects), the pathologist's decisions, and the rules that turn what is in QuPath's hierarchy into a
// corrections.submit. The state lives in each object's `loupe.*` metadata (saved with the image's
// .qpdata), so a review survives closing QuPath; this class only adds what metadata cannot hold:
// which ids were issued in this session (to notice deleted candidates) and the latest revision of
// objects no longer there. Each sent decision carries a per-object revision (docs/protocol.md,
// "Revisions, retries and stale items"), kept in `loupe.revision` metadata. Pure: no QuPath, no I/O.
package qupath.ext.loupe.core

import com.google.gson.JsonObject
import groovy.transform.CompileStatic

/** One row of the review table. */
@CompileStatic
class CandidateRow {
    String id
    /** Mean energy: low = uncertain. Null when the server sent none. */
    Double energy
    Double probability
    /** Level-0 px². */
    Double area
    String modelVersion
    ReviewStatus status
}

/** What the glue applies to a QuPath object after a decision. */
@CompileStatic
class Decision {
    String id
    ReviewStatus status
    /** Metadata entries to set on the object. */
    Map<String, String> metadata
}

/** What Send corrections will submit, with a human summary for the confirmation dialog. */
@CompileStatic
class CorrectionsPlan {
    List<CorrectionItem> items = []
    Map<String, Integer> counts = ['accepted': 0, 'rejected': 0, 'edited': 0, 'added': 0]
    /** Objects that could not be sent, and why (e.g. a point annotation inside the region). */
    List<String> skipped = []
    /**
     * Revision metadata to put on objects (by item id) before the submission is sent, so the revision
     * survives closing QuPath (it is saved with the image) and the next decision counts on from it.
     */
    Map<String, Map<String, String>> revisionMetadata = [:]

    String summary() { "${counts.accepted} accepted, ${counts.rejected} rejected, ${counts.edited} edited, ${counts.added} added" + (skipped ? " (${skipped.size()} skipped)" : '') }
}

/** An object's latest revision and the decision (CorrectionItem.signature) it was given to. */
@CompileStatic
class RevisionMark {
    final int revision
    final String of
    RevisionMark(int revision, String of) { this.revision = revision; this.of = of }

    static RevisionMark from(Map<String, String> metadata) {
        String r = metadata?.get(Keys.REVISION)
        if (r == null || !(r ==~ /[1-9][0-9]{0,9}/)) return null
        long v = Long.parseLong(r)
        return v > Integer.MAX_VALUE ? null : new RevisionMark((int) v, metadata.get(Keys.REVISION_OF) ?: '')
    }

    Map<String, String> metadata() { [(Keys.REVISION): String.valueOf(revision), (Keys.REVISION_OF): of] }
}

@CompileStatic
class ReviewState {
    private final Map<String, CandidateRow> rows = new LinkedHashMap<>()
    /** Server ids handed to QuPath in this session; one missing from the hierarchy was deleted = rejected. */
    private final Set<String> issued = new LinkedHashSet<>()
    /**
     * Latest revision per item id, as planned in this session or read from metadata: it outlives the
     * object (a deleted candidate is sent as rejected with the next revision).
     */
    private final Map<String, RevisionMark> marks = new HashMap<>()

    /** Rebuilds the queue from the image's objects (those carrying a server id). */
    void load(Collection<ObjectSnapshot> objects) {
        rows.clear()
        for (ObjectSnapshot o : objects) {
            remember(itemId(o), RevisionMark.from(o.metadata))
            String sid = o.serverId
            if (sid == null) continue
            rows[sid] = new CandidateRow(id: sid, energy: o.result('energy'), probability: o.result('probability') ?: o.result('meanProbability'),
                    area: o.result('area') ?: o.result(Keys.AREA_PX) ?: (o.geometry ? GeoJson.area(o.geometry) : null),
                    modelVersion: o.metadata[Keys.MODEL_VERSION], status: o.review ?: ReviewStatus.PENDING)
        }
    }

    /** Remembers ids the server issued in this session (after they were added to QuPath). */
    void issue(Collection<String> serverIds) { issued.addAll(serverIds) }

    Set<String> getIssued() { Collections.unmodifiableSet(issued) }

    /** Lowest energy first; objects without an energy last; ties by id so the order is stable. */
    List<CandidateRow> sorted() {
        List<CandidateRow> out = new ArrayList<>(rows.values())
        out.sort { CandidateRow a, CandidateRow b ->
            if (a.energy == null && b.energy == null) return a.id <=> b.id
            if (a.energy == null) return 1
            if (b.energy == null) return -1
            int c = a.energy <=> b.energy
            return c != 0 ? c : a.id <=> b.id
        }
        return out
    }

    CandidateRow row(String id) { rows[id] }

    Map<ReviewStatus, Integer> progress() {
        Map<ReviewStatus, Integer> m = new EnumMap<>(ReviewStatus)
        for (ReviewStatus s : ReviewStatus.values()) m[s] = 0
        for (CandidateRow r : rows.values()) m[r.status] = m[r.status] + 1
        return m
    }

    /** Records a decision; the returned metadata (and the status's class) go onto the QuPath object. */
    Decision decide(String id, ReviewStatus status) {
        CandidateRow r = rows[id]
        if (r == null) throw new LoupeException('E_REVIEW_UNKNOWN_OBJECT', "object ${id} is not a Loupe candidate of this image (reload the review table)")
        r.status = status
        return new Decision(id: id, status: status, metadata: [(Keys.REVIEW): status.wire])
    }

    /** The next pending row after `id` in queue order (wrapping), or null when all are reviewed. */
    CandidateRow nextPending(String id) {
        List<CandidateRow> s = sorted()
        int start = id == null ? -1 : s.findIndexOf { CandidateRow r -> r.id == id }
        for (int k = 1; k <= s.size(); k++) {
            CandidateRow r = s[(start + k + s.size()) % s.size()]
            if (r.status == ReviewStatus.PENDING) return r
        }
        return null
    }

    /**
     * The corrections for a reviewed area. Rules (README "What Send corrections sends"):
     * - accepted / rejected / edited decisions are sent wherever the object lies;
     * - an outline that changed since it was issued is `edited` (unless rejected), with the new outline;
     * - a candidate the pathologist gave a class of their own is accepted with that class;
     * - a candidate left pending inside a reviewed region counts as accepted: the pathologist reviewed
     *   that area and kept it (inside a reviewed region, anything not submitted is background);
     * - a candidate issued in this session and no longer present was deleted: `rejected`;
     * - an annotation without a server id whose centre lies in a reviewed region is `added`
     *   (the annotation that defines the region, `regionObjectId`, is not).
     */
    CorrectionsPlan plan(Collection<ObjectSnapshot> objects, List<JsonObject> reviewedRegions, String regionObjectId = null) {
        CorrectionsPlan p = new CorrectionsPlan()
        Set<String> present = new HashSet<>()
        for (ObjectSnapshot o : objects) {
            String sid = o.serverId
            remember(itemId(o), RevisionMark.from(o.metadata))
            if (sid != null) {
                present << sid
                ReviewStatus st = o.review ?: ReviewStatus.PENDING
                String outline = o.metadata[Keys.OUTLINE]
                boolean changed = o.geometry != null && outline != null && GeoJson.outlineSignature(o.geometry) != outline
                // A class the pathologist set by hand (not one of our review classes) is a decision too.
                boolean ownClass = o.className != null && !ReviewStatus.isReviewClass(o.className)
                String cls = ownClass ? o.className : o.metadata[Keys.CLASS]
                if (ownClass && st == ReviewStatus.PENDING) st = ReviewStatus.ACCEPTED
                if (st == ReviewStatus.REJECTED) add(p, new CorrectionItem(sid, 'rejected'))
                else if (st == ReviewStatus.EDITED || changed) {
                    if (o.geometry == null) p.skipped << "object ${sid}: its edited outline has no area (points or lines)".toString()
                    else add(p, new CorrectionItem(sid, 'edited', o.geometry, cls))
                } else if (st == ReviewStatus.ACCEPTED || (o.geometry != null && inAny(o.geometry, reviewedRegions))) {
                    add(p, new CorrectionItem(sid, 'accepted', null, cls))
                }
            } else if (o.id != regionObjectId && o.objectType == 'annotation' && !ReviewStatus.isReviewClass(o.className)) {
                if (o.geometry == null) {
                    // Points and lines are not outlines; only mention them when they are inside the area.
                    continue
                }
                if (!inAny(o.geometry, reviewedRegions)) continue
                if (!GeoJson.isUuid(o.id)) { p.skipped << "annotation ${o.id}: no UUID".toString(); continue }
                add(p, new CorrectionItem(o.id.toLowerCase(Locale.ROOT), 'added', o.geometry, o.className))
            }
        }
        for (String sid : issued) if (!present.contains(sid)) add(p, new CorrectionItem(sid, 'rejected'))
        return p
    }

    /**
     * Adds the item with its revision: the same decision as last time keeps its revision (a resend or
     * a retry), another decision takes the next one. A decision the server reported as outranked by
     * another review's newer one is not sent again until the pathologist changes the object.
     */
    private void add(CorrectionsPlan p, CorrectionItem item) {
        String sig = item.signature()
        RevisionMark m = marks[item.id]
        if (m != null && m.of == Keys.SUPERSEDED + sig) {
            p.skipped << "object ${item.id}: another review stored a newer decision (revision ${m.revision}); change the object to send yours again".toString()
            return
        }
        int revision = m != null && m.of == sig ? m.revision : (m?.revision ?: 0) + 1
        RevisionMark next = new RevisionMark(revision, sig)
        if (m == null || m.revision != revision || m.of != sig) p.revisionMetadata[item.id] = next.metadata()
        marks[item.id] = next
        p.items << item.withRevision(revision)
        p.counts[item.action] = p.counts[item.action] + 1
    }

    /**
     * After the ack: the items the server reported stale because another review's decision is newer
     * (not an older retry of ours) are marked superseded at the server's revision, so the next decision
     * about them counts on from there. Returns the metadata to put on those objects.
     */
    Map<String, Map<String, String>> acknowledged(List<CorrectionItem> sent, CorrectionsAck ack) {
        Map<String, Map<String, String>> out = [:]
        Map<String, CorrectionItem> byId = [:]
        for (CorrectionItem i : sent) byId[i.id] = i
        for (StaleItem s : ack.stale) {
            CorrectionItem i = byId[s.id]
            RevisionMark m = marks[s.id]
            if (i == null || i.revision == null || m == null || m.revision != i.revision || s.revision < i.revision) continue
            RevisionMark sup = new RevisionMark(s.revision, Keys.SUPERSEDED + i.signature())
            marks[s.id] = sup
            out[s.id] = sup.metadata()
        }
        return out
    }

    /** The id an object is sent under: the server's, or its own (lower-case) for drawn objects. */
    private static String itemId(ObjectSnapshot o) { o.serverId ?: o.id?.toLowerCase(Locale.ROOT) }

    /** Keeps the higher revision of what is known and what the object's metadata says. */
    private void remember(String id, RevisionMark fromMetadata) {
        if (id == null || fromMetadata == null) return
        RevisionMark m = marks[id]
        if (m == null || fromMetadata.revision >= m.revision) marks[id] = fromMetadata
    }

    private static boolean inAny(JsonObject geometry, List<JsonObject> regions) {
        double[] c = GeoJson.centroid(geometry)
        if (c == null) return false
        for (JsonObject r : regions) if (GeoJson.contains(r, c[0], c[1])) return true
        return false
    }
}
