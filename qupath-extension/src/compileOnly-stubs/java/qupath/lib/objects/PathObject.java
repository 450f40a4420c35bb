package qupath.lib.objects;

import java.util.Map;
import java.util.UUID;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.roi.interfaces.ROI;

/** Stand-in: qupath-core PathObject (getMetadata public since 0.5.0). */
public abstract class PathObject {
    public UUID getID() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Map<String, String> getMetadata() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public ROI getROI() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public PathClass getPathClass() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void setPathClass(PathClass pathClass) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public boolean isAnnotation() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
