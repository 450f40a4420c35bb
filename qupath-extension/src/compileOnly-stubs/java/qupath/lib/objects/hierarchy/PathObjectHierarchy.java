package qupath.lib.objects.hierarchy;

import java.util.Collection;
import qupath.lib.objects.PathObject;

/** Stand-in: qupath-core PathObjectHierarchy (0.4+ names; addPathObject* were removed in 0.6). */
public final class PathObjectHierarchy {
    public boolean addObjects(Collection<? extends PathObject> pathObjects) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void removeObjects(Collection<? extends PathObject> pathObjects, boolean keepChildren) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Collection<PathObject> getAnnotationObjects() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void fireObjectClassificationsChangedEvent(Object source, Collection<? extends PathObject> pathObjects) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void fireHierarchyChangedEvent(Object source) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
